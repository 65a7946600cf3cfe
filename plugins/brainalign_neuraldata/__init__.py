"""First-party brainalign plugin (being written)."""
