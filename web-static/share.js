/* The share explorer: one share with links to its parent, far parent and children.
 * share.html#<hash> (or ?hash=<hash>) shows that share; without a hash, the best share. */
'use strict';

(function () {
  var DIFFICULTY_1 = 65535 * Math.pow(2, 208);
  var symbol = '';

  function wantedHash() {
    var fromFragment = window.location.hash.replace('#', '').trim();
    if (fromFragment) { return Promise.resolve(fromFragment.toLowerCase()); }
    var fromQuery = new URLSearchParams(window.location.search).get('hash');
    if (fromQuery) { return Promise.resolve(fromQuery.toLowerCase()); }
    return P2.api('web/best_share_hash');
  }

  function time(seconds) {
    return new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
  }

  function difficulty(target) { return DIFFICULTY_1 / (target + 1); }

  function linkOrNone(id, hash) {
    var cell = P2.clear(P2.el(id));
    cell.setAttribute('data-raw', JSON.stringify(hash));
    P2.record(id, hash);
    cell.appendChild(hash === 'None' || hash === null ? document.createTextNode('none (start of the chain)')
                                                      : P2.shareLink(hash, hash));
  }

  function showShare(hash, share, blockHashes, currency) {
    P2.el('not-found').hidden = true;
    P2.el('share-view').hidden = false;
    P2.show('share-hash', hash);
    P2.show('type-name', share.type_name);
    P2.show('desired-version', share.share_data.desired_version);
    linkOrNone('parent', share.parent);
    linkOrNone('far-parent', share.far_parent);
    var children = P2.clear(P2.el('children'));
    children.setAttribute('data-raw', JSON.stringify(share.children));
    P2.record('children', share.children);
    if (!share.children.length) { children.textContent = 'none yet'; }
    share.children.forEach(function (child) {
      children.appendChild(P2.make('div', {}, [P2.shareLink(child, child)]));
    });
    P2.show('absheight', share.share_data.absheight);
    P2.show('verified', share.local.verified, share.local.verified ? 'yes' : 'no');
    P2.show('time-first-seen', share.local.time_first_seen, time(share.local.time_first_seen));
    var peer = share.local.peer_first_received_from;
    P2.show('peer', peer, peer ? peer[0] + ':' + peer[1] : 'this node (or loaded from disk)');

    var data = share.share_data;
    P2.show('timestamp', data.timestamp, time(data.timestamp));
    P2.show('payout-address', data.payout_address);
    P2.show('difficulty', data.target, P2.siNumber(difficulty(data.target), 4));
    P2.show('max-difficulty', data.max_target, P2.siNumber(difficulty(data.max_target), 4));
    P2.show('donation', data.donation, P2.percent(data.donation, 2));
    P2.show('stale-info', data.stale_info, data.stale_info === null ? 'none' : data.stale_info);
    P2.show('nonce', data.nonce);
    P2.show('abswork', data.abswork, P2.siNumber(data.abswork, 3) + 'hashes');

    var block = share.block;
    var blockCell = P2.clear(P2.el('block-hash'));
    blockCell.setAttribute('data-raw', JSON.stringify(block.hash));
    P2.record('block-hash', block.hash);
    var isBlock = blockHashes.indexOf(block.hash) >= 0;
    blockCell.appendChild(isBlock && currency.block_explorer_url_prefix
      ? P2.make('a', {href: currency.block_explorer_url_prefix + block.hash, rel: 'noreferrer', text: block.hash})
      : document.createTextNode(block.hash));
    P2.show('is-block', isBlock, isBlock ? 'yes: this share solved a block' : 'no');
    P2.show('header-version', block.header.version, '0x' + block.header.version.toString(16));
    P2.show('previous-block', block.header.previous_block);
    P2.show('merkle-root', block.header.merkle_root);
    P2.show('header-timestamp', block.header.timestamp, time(block.header.timestamp));
    P2.show('block-difficulty', block.header.target, P2.siNumber(difficulty(block.header.target), 4));
    P2.show('header-nonce', block.header.nonce);
    P2.show('gentx-hash', block.gentx.hash);
    P2.show('gentx-value', block.gentx.value, P2.coins(block.gentx.value, symbol));
    P2.show('coinbase', block.gentx.coinbase);
    P2.show('last-txout-nonce', block.gentx.last_txout_nonce);
    P2.show('other-tx-count', block.other_transaction_hashes.length);
    P2.show('gentx-raw', block.gentx.raw);
    document.title = 'P2Pool share ' + hash.slice(0, 16);
  }

  function showMissing(hash, reason) {
    P2.el('share-view').hidden = true;
    var box = P2.el('not-found');
    box.hidden = false;
    box.textContent = hash ? 'Share ' + hash + ': ' + reason : reason;
    P2.record('not-found', hash);
  }

  function load() {
    return Promise.all([wantedHash(), P2.api('web/currency_info'), P2.api('recent_blocks')]).then(function (r) {
      var hash = r[0];
      var currency = r[1];
      symbol = currency.symbol;
      P2.el('lookup-hash').value = hash || '';
      if (!hash) { showMissing(null, 'there is no best share yet'); return null; }
      if (!/^[0-9a-f]{1,64}$/.test(hash)) { showMissing(hash, 'not a share hash (up to 64 hex digits)'); return null; }
      return P2.api('web/share/' + hash).then(function (share) {
        if (share === null) { showMissing(hash, 'unknown share (not in this node\'s sharechain)'); return; }
        showShare(hash, share, r[2].map(function (block) { return block.hash; }), currency);
      }, function (error) {
        if (error.status) { showMissing(hash, error.message); return; }
        throw error;
      });
    });
  }

  P2.el('lookup').addEventListener('submit', function (event) {
    event.preventDefault();
    window.location.hash = P2.el('lookup-hash').value.trim();
  });
  window.addEventListener('hashchange', function () {
    load().catch(function (error) { window.P2_REPORT_ERROR(String(error.message || error)); });
  });
  P2.run(load, 0);
}());
