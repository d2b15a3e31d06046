"""Feedback on answers: the body a client posts, the per-tenant store, and the export back into eval and
adapter data."""
