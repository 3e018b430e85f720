"""The convcalc command line: a thin Typer front end over the `convcalc` library."""
