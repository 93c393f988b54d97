"""Backends: one RecommendationBackend protocol; Personalize (aioboto3) or the embedded engine."""
