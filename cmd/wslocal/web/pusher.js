// Presence chat on Laravel Echo + pusher-js: member list from the presence
// channel, messages and "typing…" as whispers (client events).
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const status = (text, cls) => { $('status').textContent = text; $('status').className = 'status ' + cls; };
  if (!window.Pusher || !window.Echo) {
    status('pusher-js or laravel-echo missing: run `npm ci` in test/pusher (make dev does)', 'err');
    return;
  }
  let echo;
  let channel;
  const members = new Map();
  let typingTimer;

  function renderMembers() {
    const ul = $('members');
    ul.replaceChildren(...[...members.values()].sort().map((name) => {
      const li = document.createElement('li');
      li.textContent = name;
      return li;
    }));
  }
  function addMessage(who, text) {
    const li = document.createElement('li');
    const b = document.createElement('b');
    b.textContent = who + ': ';
    li.append(b, document.createTextNode(text));
    $('messages').append(li);
  }

  $('join-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (echo) echo.disconnect();
    const cfg = await (await fetch('pusher-config.json')).json();
    const name = $('name').value.trim();
    const id = name.toLowerCase().replace(/[^a-z0-9_\-=@,.;]/g, '-') + '-' + Math.random().toString(36).slice(2, 8);
    echo = new window.Echo.default({
      broadcaster: 'pusher', Pusher: window.Pusher, key: cfg.key, cluster: '',
      wsHost: location.hostname, wsPort: Number(location.port || 80), forceTLS: false, enabledTransports: ['ws'],
      channelAuthorization: { endpoint: 'pusher-auth', params: { user_id: id, user_name: name } },
    });
    const pusher = echo.connector.pusher;
    pusher.connection.bind('state_change', (s) => status(s.current, s.current === 'connected' ? 'on' : 'off'));
    members.clear();
    channel = echo.join($('room').value.trim())
      .here((users) => { users.forEach((u) => members.set(u.id, u.name)); renderMembers(); $('text').disabled = $('say').disabled = false; })
      .joining((u) => { members.set(u.id, u.name); renderMembers(); })
      .leaving((u) => { members.delete(u.id); renderMembers(); })
      .listenForWhisper('message', (m) => addMessage(m.name, m.text))
      .listenForWhisper('typing', (m) => {
        $('typing').textContent = m.name + ' is typing…';
        clearTimeout(typingTimer);
        typingTimer = setTimeout(() => { $('typing').textContent = ''; }, 2000);
      })
      .error((err) => status('subscription error ' + (err && err.status), 'err'));
  });

  $('text').addEventListener('input', () => channel && channel.whisper('typing', { name: $('name').value.trim() }));
  $('say-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = $('text').value.trim();
    if (!text || !channel) return;
    channel.whisper('message', { name: $('name').value.trim(), text });
    addMessage($('name').value.trim() + ' (you)', text);
    $('text').value = '';
  });
})();
