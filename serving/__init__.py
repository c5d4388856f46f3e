"""Serving: batch scoring, reports, REST API and Spark (``cx_models.serving``)."""
