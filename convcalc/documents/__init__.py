"""The JSON documents convcalc prints, built where library users can get them too."""
