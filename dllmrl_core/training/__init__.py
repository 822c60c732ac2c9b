"""LoRA wrapping and adapter I/O, optimizer, one learner step, masked-diffusion SFT."""
