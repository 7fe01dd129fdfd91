"""The use cases, in plain Python: who may do what, in one transaction, audited. No wire format here:
the protocols (protocols/) translate requests into these calls and their results back."""
