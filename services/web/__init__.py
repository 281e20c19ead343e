"""The web front end (窓口画面): server-rendered pages over the services' public APIs."""
