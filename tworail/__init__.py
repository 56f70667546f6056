"""tworail: agents that learn at run time under governance."""
