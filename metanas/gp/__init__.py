"""Gaussian-process models: GPPVAE (VAE with a GP prior over latents)."""
