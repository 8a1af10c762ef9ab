"""gRPC servicers: decode → call the core → encode. Errors map to status codes in `status.py`."""
