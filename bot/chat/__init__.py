"""Chat: event classification, history, token trimming, and the pipeline that answers a message."""
