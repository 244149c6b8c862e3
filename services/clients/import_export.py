"""Import of clients from CSV/XLSX files (preview, then run) and export of the list to a
file, in the columns an import reads back: the entrypoints.  Reading, grouping and
writing the files is domain/importing.py; the queries are store.py's."""
from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from services.clients import store
from services.clients.domain.importing import (
    EXPORT_COLUMNS,
    client_rows,
    contacts_to_add,
    export_rows,
    group_rows,
    preview_import,
    preview_report,
)
from services.clients.domain.inputs import check_lang, decode_file
from services.clients.domain.listing import parse_list_query
from services.clients.models import ClientImport
from services.clients.schemas import client_dict
from services.kit import clock
from services.kit.dependencies import Work
from services.kit.entrypoints import rpc
from services.kit.errors import Conflict, Forbidden
from services.kit.parse import identifier

EXPORT_LIMIT = 10_000  # clients per exported file; narrow the filter for more
IMPORT_KEPT = timedelta(days=1)  # how long a previewed file waits to be imported


class ImportExportEntrypoints:
    db: Work

    @rpc
    def preview_import(self, content_b64: str, user_id: int | None = None,
                       filename: str | None = None) -> dict[str, Any]:
        """Read a CSV/XLSX file and report what an import would do, row by row; the file
        is kept under ``import_id`` for ``run_import``."""
        data = decode_file(content_b64)
        preview = preview_import(data)
        groups = group_rows(preview.rows_ok)
        known = store.clients_by_inn(self.db, [g["requisites"].get("inn") for g in groups])
        # files nobody imported within a day are dropped as new ones come
        store.drop_stale_imports(self.db, clock.now() - IMPORT_KEPT)
        stored = ClientImport(filename=(filename or "")[:300] or None, content=data,
                              created_by=user_id)
        self.db.add(stored)
        self.db.flush()
        return {"import_id": stored.id, **preview_report(preview, groups, known)}

    @rpc
    def run_import(self, import_id: int, user_id: int | None = None,
                   lang: str = "ru") -> dict[str, Any]:
        """Import the rows without errors of a previewed file, each whole or not at all.

        A row whose INN is already a client's adds its contact to that client (an export
        imported back creates nothing twice); rows with errors are skipped and reported.
        """
        lang = check_lang(lang)
        stored = store.previewed_import(self.db, identifier(import_id, "import_id"))
        if stored.created_by is not None and user_id is not None and stored.created_by != user_id:
            raise Forbidden("this file was uploaded by someone else", entity="import")
        if stored.status != "previewed":
            raise Conflict(f"import {import_id} has already run", entity="import",
                           id=stored.id)
        preview = preview_import(stored.content)
        known = store.clients_by_inn(self.db, [row["requisites"].get("inn")
                                               for row in preview.rows_ok])
        groups = group_rows(preview.rows_ok)
        fresh = [g for g in groups if g["requisites"].get("inn") not in known]
        created = store.insert_clients(
            self.db, [(g["client"], g["requisites"], {}) for g in fresh], user_id, lang,
            "import")
        new_ids = iter(created)
        client_ids = [known.get(g["requisites"].get("inn")) or next(new_ids) for g in groups]
        have = store.contact_keys(self.db, [c for c in client_ids if c not in set(created)])
        new_contacts = contacts_to_add(groups, client_ids, have)
        store.insert_contacts(self.db, new_contacts, user_id, "import")
        completed = {client_id for client_id, _ in new_contacts} - set(created)
        result: dict[str, Any] = {
            "created": len(created), "updated": len(completed),
            "contacts_added": len(new_contacts),
            "skipped_rows": sorted({e.row_number for e in preview.errors}),
            "errors": [vars(e) for e in preview.errors], "client_ids": client_ids}
        stored.status = "done"
        stored.content = b""  # the clients are in the database now; the file is not needed
        stored.result = {k: v for k, v in result.items() if k != "client_ids"}
        stored.finished_at = clock.now()
        return result

    @rpc
    def export_clients(self, query: str = "", filters: dict[str, Any] | None = None,
                       sort: str = "name", fmt: str = "csv", lang: str = "ru",
                       manager_order: list[int] | None = None) -> dict[str, Any]:
        """The filtered list as a CSV or XLSX file (base64), one row per contact, in the
        columns an import reads back."""
        q = parse_list_query(query, filters, sort, 1, 1, manager_order or ())
        clients = store.export_page(self.db, q, EXPORT_LIMIT + 1)
        rows = [row for c in clients[:EXPORT_LIMIT] for row in client_rows(client_dict(c))]
        content = export_rows(rows, EXPORT_COLUMNS, fmt, check_lang(lang))
        stamp = clock.now().strftime("%Y%m%d-%H%M")
        return {"filename": f"clients-{stamp}.{fmt}", "rows": len(rows),
                "clients": min(len(clients), EXPORT_LIMIT),
                "truncated": len(clients) > EXPORT_LIMIT,
                "content_b64": base64.b64encode(content).decode("ascii")}
