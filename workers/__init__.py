"""Celery side: the app, thin task wrappers with stable names, the beat schedule."""
