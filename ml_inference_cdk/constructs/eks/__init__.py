"""EKS: the manifest builder (plain dicts, shared with the YAML export) and the EKS deployment construct."""
