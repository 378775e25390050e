"""The gateway side of payments: the UnionPay ACP protocol (``acp``) and, later, the embedded sandbox."""
