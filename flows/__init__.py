"""Bot flows (YAML files) and the example custom actions they run (``flows.actions``)."""
