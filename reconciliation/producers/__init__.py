"""Builders of the files we produce: bytes from the closed results and the ledger (no database writes)."""
