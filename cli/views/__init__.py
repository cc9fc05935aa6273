"""What commands print and nothing else imports: tables and JSON of runs, judges and a run's status."""
