"""GAN-assisted teacher-student compression and the Compression Score."""
