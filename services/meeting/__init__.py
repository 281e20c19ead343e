"""Meeting: the support case (支援プラン), coordination meetings, 支援会議 and vital interest."""
