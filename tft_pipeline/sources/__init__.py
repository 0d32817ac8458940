"""Where raw data comes from: one interface, a sample and a live implementation of each source."""
