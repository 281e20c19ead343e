"""The desk's pages, one module per screen family; each calls the APIs and renders."""
