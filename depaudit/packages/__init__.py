"""Stage 4: map what the image must provide to packages of the target distro."""
