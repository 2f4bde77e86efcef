from modelport.cli import entry

entry()
