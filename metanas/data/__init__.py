"""Dataset readers, episodic task samplers and synthetic task families."""
