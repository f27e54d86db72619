from agents.waitfor.cli import entry

entry()
