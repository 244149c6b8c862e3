"""Pure domain rules of the clients service: no nameko, no SQL, callable in microseconds.

- requisites: INN, KPP, OGRN/OGRNIP, BIK, account checksums; ``validate_requisites``
- phones: phone (E.164) and e-mail normalisation, phone search keys
- clients: automatic names, client/contact input, change history, duplicates, merging
- importing: CSV/XLSX import preview with a row-by-row report, and export
- text: small shared helpers (blank checks, trimmed text, domain names)
"""
