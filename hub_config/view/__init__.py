"""The trainee's path on their own server: home, workbook view, submit and feedback."""
