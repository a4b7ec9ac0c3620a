"""Automation: rules that start a Prefect deployment for a ticket and bring its outcome back (see `plan.py`)."""
