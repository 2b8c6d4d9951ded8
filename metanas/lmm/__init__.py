"""Warped linear mixed models for GWAS (Fusi, Lippert, Lawrence & Stegle 2014, arXiv 1402.5447)."""
