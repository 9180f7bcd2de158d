"""The weekly bear picture: theme and prompt for the date, generation, cost and budget, posting to Slack."""
