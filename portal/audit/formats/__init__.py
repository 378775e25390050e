"""Pure writers for audit log exports: no ORM, no request."""
