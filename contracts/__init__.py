"""What Tsunagu's services share and nothing else: the envelope, integration events, topics,
reference data and (later) the disclosure policy. Plain Python: no web, broker or SQL imports."""
