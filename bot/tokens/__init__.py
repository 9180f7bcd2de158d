"""Token counting and trimming arithmetic, below chat, llm and contracts so each can count the same way.

The tiktoken encodings ship in tiktoken_files/ (tiktoken would otherwise download them at first use).
"""
