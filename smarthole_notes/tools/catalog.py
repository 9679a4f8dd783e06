"""Every tool's declaration: name, description, input model and what a call does.

This is the one place the contract with the model is written down. The tool
families (`vault`, `git`, `conversation`) bind these declarations to what they act on;
everything else that needs to know about tools (the MCP server's hints, which results
changed notes) reads them from here. It imports nothing but pydantic and `base`, so any
part of the program may import it without a cycle.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import Field

from smarthole_notes.tools.base import READ_ONLY, ToolAnnotations, ToolDefinition
from smarthole_notes.tools.schema import ToolArgs

PATH_RULES: Final = (
    "Paths are relative to the vault root with '/' separators (e.g. 'Projects/Plan.md'); "
    "letter case does not need to match. Protected folders (.obsidian, .smarthole, .git) are "
    "off limits."
)
PATH: Final = "Vault-relative path, e.g. 'Projects/Plan.md'."
GIT_MAX_RESULTS: Final = 100
DIFF_LIMIT: Final = 5_000
"""Characters of diff shown per file."""

# -- the vault tools -----------------------------------------------------------------------


class ReadFileArgs(ToolArgs):
    path: str = Field(description=PATH)
    start_line: int | None = Field(
        None, ge=1, description="First line to show (1-based, inclusive)."
    )
    end_line: int | None = Field(None, ge=1, description="Last line to show (inclusive).")


class LineSpan(ToolArgs):
    start: int = Field(ge=1, description="First line to delete.")
    end: int = Field(ge=1, description="Last line to delete.")


class EditFileArgs(ToolArgs):
    """Both modes in one model: which fields were given (`model_fields_set`) picks the mode."""

    path: str = Field(description=PATH)
    old_text: str | None = Field(None, description="Exact text to find (search/replace mode).")
    new_text: str | None = Field(None, description="Replacement text; empty to delete old_text.")
    replace_all: bool = Field(
        False, description="Replace every occurrence (default false: first only)."
    )
    insert_after_line: int | None = Field(
        None, ge=0, description="Insert content after this line; 0 inserts at the top."
    )
    insert_before_line: int | None = Field(
        None, ge=1, description="Insert content before this line."
    )
    delete_lines: LineSpan | None = Field(None, description="Lines to delete, inclusive.")
    content: str | None = Field(None, description="Text to insert (line operations only).")


class WriteFileArgs(ToolArgs):
    path: str = Field(description=PATH)
    content: str = Field(description="The complete new content.")


class CreateFolderArgs(ToolArgs):
    path: str = Field(description="Vault-relative folder path, e.g. 'Projects/2025'.")


class PathArgs(ToolArgs):
    path: str = Field(description=PATH)


class MoveFileArgs(ToolArgs):
    source: str = Field(description="Current vault-relative path.")
    destination: str = Field(description="New vault-relative path, or a folder to move into.")


class SearchFilesArgs(ToolArgs):
    pattern: str = Field(
        min_length=1,
        description="Regular expression (RE2), e.g. 'project alpha' or 'budget (review|report)'.",
    )
    file_pattern: str = Field(
        "*.md",
        description="Glob of files to search; default '*.md' (every note). Without '/' it "
        "matches file names in any folder; with '/' it matches from the vault root, e.g. "
        "'Projects/**/*.md'.",
    )
    context_lines: int = Field(
        2, ge=0, le=20, description="Lines of context around each match (default 2)."
    )
    max_results: int = Field(
        10, ge=1, le=200, description="Maximum number of files to show (default 10)."
    )


class ListFilesArgs(ToolArgs):
    pattern: str = Field("*", description="Glob with *, ?, ** (default '*').")
    path: str = Field("", description="Folder to list, relative to the vault (default the root).")
    max_results: int = Field(
        100, ge=1, le=1000, description="Maximum entries to return (default 100, at most 1000)."
    )


class NoArgs(ToolArgs):
    pass


class SearchNotesArgs(ToolArgs):
    query: str = Field(
        min_length=1,
        max_length=500,
        description="What to look for, in plain words, e.g. 'what did I decide about the kitchen'.",
    )
    limit: int = Field(10, ge=1, le=50, description="Maximum number of notes (default 10).")
    folder: str | None = Field(None, description="Only notes under this folder.")
    tag: str | None = Field(
        None, description="Only notes with this tag (e.g. 'project'; includes 'project/x')."
    )


class SetPropertiesArgs(ToolArgs):
    path: str = Field(description=PATH)
    properties: dict[str, Any] = Field(
        description='Properties to set, e.g. {"status": "done", "due": "2026-12-01", '
        '"tags": ["home"]}; a value of null removes that property.',
    )


WRITES = ToolAnnotations(read_only=False, destructive=True, idempotent=True)
"""Replaces or removes what is there; the same call again changes nothing more."""

READ_FILE = ToolDefinition(
    "read_file",
    "Read a note (or other text file) with numbered lines ('12: text') and a footer "
    "'[lines 1-40 of 40]'. Use start_line/end_line to read part of a long file; output stops "
    "at about 2,000 lines or 100 KB and the footer says how to continue. A path without "
    f"extension means the .md note. {PATH_RULES}",
    ReadFileArgs,
    READ_ONLY,
)
EDIT_FILE = ToolDefinition(
    "edit_file",
    "Change part of an existing note. Either search/replace (old_text, new_text, optional "
    "replace_all; old_text must match exactly, and only the first occurrence is replaced "
    "unless replace_all is true) or exactly one line operation: insert_after_line (0 = top) "
    "or insert_before_line with content, or delete_lines {start, end} (inclusive). Prefer "
    "search/replace; line numbers come from read_file and go stale if the note changes. "
    f"Edits made meanwhile in Obsidian are kept. {PATH_RULES}",
    EditFileArgs,
    ToolAnnotations(read_only=False, destructive=True, idempotent=False),  # inserts repeat
    writes_vault=True,
)
WRITE_FILE = ToolDefinition(
    "write_file",
    "Create a file, or replace a file's whole content. Parent folders are created. A path "
    "without extension gets '.md'. To change part of an existing note use edit_file instead. "
    f"Writes are atomic: the note is never left half-written. {PATH_RULES} Nothing can be "
    "written in .trash.",
    WriteFileArgs,
    WRITES,  # overwrites
    writes_vault=True,
)
CREATE_FOLDER = ToolDefinition(
    "create_folder",
    "Create a folder (and its parents). An existing folder is reported, not an error. "
    f"{PATH_RULES}",
    CreateFolderArgs,
    ToolAnnotations(read_only=False, destructive=False, idempotent=True),  # only adds
    writes_vault=True,
)
DELETE_FILE = ToolDefinition(
    "delete_file",
    "Delete a note or a folder (with its contents) by moving it to the vault's .trash/ folder "
    "under the same relative path; nothing is destroyed and it can be moved back with "
    f"move_file. {PATH_RULES} Give 'Name/' for a folder when a note 'Name.md' sits beside it.",
    PathArgs,
    WRITES,  # out of the vault's notes (kept in .trash/)
    writes_vault=True,
)
MOVE_FILE = ToolDefinition(
    "move_file",
    "Move or rename a note, file or folder. Missing destination folders are created; if "
    "destination is an existing folder (or ends with '/'), the source goes inside it. Never "
    "overwrites an existing file. Links to the moved notes elsewhere in the vault ([[wiki "
    "links]], embeds, Markdown links) are updated, as Obsidian does. Also restores from "
    f".trash/. {PATH_RULES}",
    MoveFileArgs,
    WRITES,  # renames, and rewrites links in other notes
    writes_vault=True,
)
SEARCH_FILES = ToolDefinition(
    "search_files",
    "Search the contents of notes with a regular expression (RE2 syntax: no look-around or "
    "backreferences). Case-insensitive unless the pattern starts with (?-i); ^ and $ match at "
    "line boundaries. Returns, per matching file (most matches first), up to 5 excerpts with "
    "line numbers, matching lines marked '>'. For plain words just give the words; escape "
    "regex characters such as ( [ . * + ?. Hidden and protected folders and .trash are not "
    "searched.",
    SearchFilesArgs,
    READ_ONLY,
)
LIST_FILES = ToolDefinition(
    "list_files",
    "List files and folders matching a glob, newest files first: '[file] path (modified: "
    "date)' and '[folder] path/' lines. The glob is case-insensitive and relative to path: "
    "'*' lists the folder's direct contents (the default), '**/*.md' every note below it, "
    "'**/*meeting*' any depth. Hidden and protected folders are skipped; list the trash with "
    "path '.trash'.",
    ListFilesArgs,
    READ_ONLY,
)
GET_FILE_INFO = ToolDefinition(
    "get_file_info",
    "Details of a file or folder: type, size (files), line count (text files), created and "
    f"modified dates. {PATH_RULES}",
    PathArgs,
    READ_ONLY,
)
GET_ACTIVE_NOTE = ToolDefinition(
    "get_active_note",
    "The note currently open in Obsidian (path, name, modified date), from Obsidian's "
    "workspace. Use it when the user says 'this note' or 'the current note'.",
    NoArgs,
    READ_ONLY,
)

SEARCH_NOTES = ToolDefinition(
    "search_notes",
    "Find notes by what they are about: ranked search over note titles, aliases, headings, "
    "tags, properties and text (word forms and accents do not need to match). Use it first "
    "for questions such as 'what did I write about X' or to find the note a request means. "
    "Optional folder and tag filters. Each result line starts with the note's path, then its "
    "title and a snippet with the matching words in **bold**, best first. For exact text or "
    "regular expressions use search_files.",
    SearchNotesArgs,
    READ_ONLY,
)
GET_LINKS = ToolDefinition(
    "get_links",
    "A note's links: outgoing links (wiki links, embeds, Markdown links) with the path each "
    "opens, or marked unresolved, and backlinks: every note that links to it or embeds it, "
    f"with the line holding the link. Links in code do not count. {PATH_RULES}",
    PathArgs,
    READ_ONLY,
)
SET_PROPERTIES = ToolDefinition(
    "set_properties",
    "Set or remove a note's properties (YAML front matter), creating the block if needed. "
    "Other properties, their order and comments, and the body stay exactly as they were. "
    "Values follow Obsidian's property types: text, number, true/false, date ('2026-12-01'), "
    "date and time ('2026-12-01T09:30'), list. null removes a property. Edits made "
    f"meanwhile in Obsidian are kept. {PATH_RULES}",
    SetPropertiesArgs,
    WRITES,
    writes_vault=True,
)

# -- the git history tools -----------------------------------------------------------------


class SearchGitHistoryArgs(ToolArgs):
    query: str | None = Field(None, description="Text to find in commit messages.")
    file_path: str | None = Field(
        None, description="Only commits that changed this file (vault-relative path)."
    )
    since: str | None = Field(None, description="ISO date or date-time, inclusive.")
    until: str | None = Field(None, description="ISO date or date-time, inclusive.")
    max_results: int = Field(
        10, ge=1, le=GIT_MAX_RESULTS, description="Maximum number of commits to list."
    )


class ViewFileHistoryArgs(ToolArgs):
    file_path: str = Field(description="Vault-relative path of the file.")
    max_results: int = Field(
        5, ge=1, le=GIT_MAX_RESULTS, description="Maximum number of commits to list."
    )
    include_diff: bool = Field(False, description="Show each commit's diff of the file.")


class ViewCommitArgs(ToolArgs):
    commit_hash: str = Field(description="Full or abbreviated commit hash.")


SEARCH_GIT_HISTORY = ToolDefinition(
    "search_git_history",
    "Search the vault's git history (every change the assistant committed). Give query (text "
    "in commit messages) and/or file_path, optionally since/until (ISO dates). Returns "
    "'[hash] date -- message summary' lines, newest first.",
    SearchGitHistoryArgs,
    READ_ONLY,
)
VIEW_FILE_HISTORY = ToolDefinition(
    "view_file_history",
    "The commits that changed one file, newest first, following renames; with include_diff, "
    f"each commit's diff of that file (cut at about {DIFF_LIMIT:,} characters).",
    ViewFileHistoryArgs,
    READ_ONLY,
)
VIEW_COMMIT = ToolDefinition(
    "view_commit",
    "One commit in full: hash, author, date, message, and the files it added, modified, "
    f"deleted or renamed, with their diffs (cut at about {DIFF_LIMIT:,} characters per file).",
    ViewCommitArgs,
    READ_ONLY,
)

# -- the conversation tools ----------------------------------------------------------------


class SendMessageArgs(ToolArgs):
    message: str = Field(min_length=1, max_length=4000, description="What the user reads.")
    is_question: bool = Field(
        False, description="True to ask and wait for the user's reply (the next message)."
    )


class EndConversationArgs(ToolArgs):
    reason: str | None = Field(
        None, max_length=500, description="Why the conversation ends, in a few words."
    )


class GetConversationArgs(ToolArgs):
    conversation_id: str | None = Field(
        None, min_length=1, max_length=100, description="Id of an ended conversation to read."
    )
    list_recent: int = Field(
        10, ge=1, le=50, description="How many recent conversations (or search hits) to list."
    )
    query: str | None = Field(
        None, min_length=1, max_length=500, description="Words to search past conversations for."
    )


SEND_MESSAGE = ToolDefinition(
    "send_message",
    "Send a message to the user while you are still working (progress on a long task, or a "
    "question). With is_question=true you wait for their reply, which arrives as the next "
    "message; use questions only when a wrong guess would be costly.",
    SendMessageArgs,
    ToolAnnotations(read_only=False, destructive=False, idempotent=False, open_world=True),
)
END_CONVERSATION = ToolDefinition(
    "end_conversation",
    "End the current conversation when the user's topic is finished (they say goodbye, "
    "thanks, or switch to something unrelated). The next message starts a new one.",
    EndConversationArgs,
    ToolAnnotations(read_only=False, destructive=False, idempotent=True),
)
GET_CONVERSATION = ToolDefinition(
    "get_conversation",
    "Look back at earlier, ended conversations. With conversation_id: its full messages. "
    "With query: search past conversations for words. Otherwise: the most recent ones (id, "
    "title, summary, times). The current conversation is already in your prompt.",
    GetConversationArgs,
    READ_ONLY,
)

# -- the whole set -------------------------------------------------------------------------

VAULT_TOOLS: Final = (
    READ_FILE,
    EDIT_FILE,
    WRITE_FILE,
    CREATE_FOLDER,
    DELETE_FILE,
    MOVE_FILE,
    SEARCH_FILES,
    LIST_FILES,
    GET_FILE_INFO,
    GET_ACTIVE_NOTE,
    SEARCH_NOTES,
    GET_LINKS,
    SET_PROPERTIES,
)
GIT_TOOLS: Final = (SEARCH_GIT_HISTORY, VIEW_FILE_HISTORY, VIEW_COMMIT)
CONVERSATION_TOOLS: Final = (SEND_MESSAGE, END_CONVERSATION, GET_CONVERSATION)
ALL_TOOLS: Final[tuple[ToolDefinition[Any], ...]] = (
    *VAULT_TOOLS,
    *GIT_TOOLS,
    *CONVERSATION_TOOLS,
)
BY_NAME: Final = {d.name: d for d in ALL_TOOLS}

NOTE_WRITING_TOOLS: Final[frozenset[str]] = frozenset(d.name for d in ALL_TOOLS if d.writes_vault)
"""Tools whose successful call changed the notes: what makes a request "did something"."""
READ_ONLY_TOOLS: Final[frozenset[str]] = frozenset(
    d.name for d in ALL_TOOLS if d.annotations.read_only
)

__all__ = [
    "ALL_TOOLS",
    "BY_NAME",
    "CONVERSATION_TOOLS",
    "GIT_TOOLS",
    "NOTE_WRITING_TOOLS",
    "READ_ONLY_TOOLS",
    "VAULT_TOOLS",
]
