"""projections.projectors."""
