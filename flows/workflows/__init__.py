"""Auto-resolution workflows the hub ships: Prefect flows that automation rules start (`automation.rules`)."""
