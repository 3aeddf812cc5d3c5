"""DNS: the records postform owns, their output formats, verification and push."""
