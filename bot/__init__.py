"""Lukas the Bear: the research team's stuffed-bear Slack chatbot."""

__version__ = "0.1.0"
