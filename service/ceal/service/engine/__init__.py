"""Monte-Carlo inference engine: preprocessing, samplers (whole model, split prefix/suffix), batching."""
