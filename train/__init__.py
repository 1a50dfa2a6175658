"""train: fine-tune a cross-encoder (lands with issue 3)."""
