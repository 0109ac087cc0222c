//! loadctl library: argument parsing and commands.
