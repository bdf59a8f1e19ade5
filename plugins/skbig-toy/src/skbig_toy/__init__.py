"""skbig-toy: a minimal backend plugin for skbig (see README.md)."""
