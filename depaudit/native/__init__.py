"""Stage 3: read ELF dynamic sections and resolve needed sonames like ld.so."""
