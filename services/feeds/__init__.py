"""The feeds engine: what keeps a service's tables from other services' events.

The runner applies each batch of messages in one transaction with the feed's positions and
processed ids (``store``), quarantines what fails alone (``quarantine``, ``deadletters``), runs
as a faust worker (``worker``) or replays a backlog (``rebuild``); ``consents`` is the replica of
intake's consent ledger any feed may keep. It knows no particular view: the views, referral and
meeting bring their own tables and projectors.
"""
