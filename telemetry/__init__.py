"""What an operator watches: Prometheus metrics (`metrics.py`) and log lines, as text or JSON
with the interview they belong to (`logs.py`). Imports nothing of the service."""
