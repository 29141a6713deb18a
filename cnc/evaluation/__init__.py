"""Evaluating models: the task protocol, evaluation data, summaries of one model."""
