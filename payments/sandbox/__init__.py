"""The embedded sandbox acquirer: the card network side of ACP, for the embedded run and tests (see outcomes.py)."""
