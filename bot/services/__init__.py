"""Domain services: what the dialogs, the CLI and the runtime do to storage, in domain words."""
