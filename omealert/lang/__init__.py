"""The condition language of rules: lex → parse → check → compile.

Also batch evaluation over many targets, and the table of fields a condition can name.
"""
