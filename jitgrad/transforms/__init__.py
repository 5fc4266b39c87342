"""IR -> IR transforms: forward and reverse mode, batching, custom rules, clean-up passes."""
