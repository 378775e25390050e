"""Batch refund files (批量退货): pure parsers and writers, no ORM (fuzzable)."""
